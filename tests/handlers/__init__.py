"""Handler modules the end-to-end tests run on real runners."""
