"""Settings: layers from marker, command line, ini and environment, resolved into one record."""
