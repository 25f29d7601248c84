"""An example Scrapy project whose crawls are tracked runs (see README.md, "Scrapy")."""
