"""Lambda handlers for the sample application.

They read their linked resources with ``from sst import Resource`` (PyPI ``sst-sdk``)
exactly as an SST app does, so the same code runs under SST or harbor.
"""
