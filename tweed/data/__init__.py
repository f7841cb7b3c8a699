"""Example specs that ship with Tweed (written for Tweed, not copied from elsewhere)."""
