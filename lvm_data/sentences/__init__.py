"""Templates that turn decoded items into visual sentences."""
