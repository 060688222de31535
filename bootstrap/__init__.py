"""The bootstrap program: what an account owner runs once so GitHub Actions can deploy harbor.

``__main__.py`` is the Pulumi program (project ``harbor-bootstrap``); ``settings`` validates
its stack config and ``backend`` builds the Pulumi state bucket and secrets key.
"""
