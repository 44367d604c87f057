"""Programs that make and publish rnamotif-data datasets (they import the library)."""
