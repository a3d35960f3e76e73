"""Access control of the API (issue 9): who the caller is (`Principal`), what
their role may do (`permissions`), and the login, token and admin routes.

Routes declare what they need with `dependencies=[require(Permission.X)]`; the
dependency answers 401 or 403 problem+json before the route runs.
"""
