"""The `tweed` command (click). Errors in input print one line and exit with code 2."""
