"""subject_rights: WerkSaam's contact point for data-subject requests (GDPR art 12-22, agreement art 10)."""
