"""The kernel: settings, storage, errors, audit, events, jobs, time, geo, i18n, security.

The kernel imports no domain; domains and entry points build on it.
"""
