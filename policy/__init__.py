"""harbor's CrossGuard policy pack; the policies live in ``policy.policies``."""
