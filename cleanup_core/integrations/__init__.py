"""Integrations with scraping frameworks; each module imports its framework only when used."""
