"""Services business logic: the catalogue and its search (``catalogue``, ``search``)."""
