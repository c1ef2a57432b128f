"""Directories and contacts (SPEC C): arrive with the console issues."""
