"""The sample application's runtime code (Lambda handlers). Never imports pulumi."""
