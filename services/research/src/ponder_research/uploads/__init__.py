"""Uploaded libraries: documents a tenant uploads (LibraryService), stored durably and indexed
passage by passage in the background."""
