"""NGSI-LD query languages for the context hub: ``q`` (:mod:`.qlang`) and geo-queries (:mod:`.geoquery`)."""
