from cleanup_core.cli import main

main()
