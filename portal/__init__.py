"""The administrator portal (/manage/): extensions, company numbers, hunt groups, the
auto-attendant and its announcements, security (SPEC E1-E6)."""
