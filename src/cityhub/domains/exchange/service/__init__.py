"""The exchange services: catalogue, loads, requests and grants, governed reads."""
