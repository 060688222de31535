"""The AWS components, one module each, built on :mod:`components.core`."""
