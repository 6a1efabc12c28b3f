"""Encrypted, portable export of the journal (age), and import back into a journal."""
