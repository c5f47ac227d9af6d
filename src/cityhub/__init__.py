"""cityhub: one platform for a city's services, data, devices and communities."""

__version__ = "0.1.0"
