"""What an editor gets before sending: the built files, the checks, the live rebuild."""
