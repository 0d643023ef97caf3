"""AWS's authorization of the local system's requests, decided from the synthesized template.

The emulator (moto) enforces no IAM policy, resource policy or key policy. This package reads a
template as AWS would see it deployed (`model`), turns an AWS call into the requests AWS
authorizes for it (`calls`, `requests`) and decides them with an implementation of AWS's
evaluation logic (`evaluate`). The permission model (tests/permissions) uses it to prove every
edge of the templates.
"""
