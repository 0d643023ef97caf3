#!/usr/bin/env python3
"""CDK entry point (`cdk synth` runs it through cdk.json): writes cdk.out/Entrix.template.json."""

from infra.app import build_app

build_app().synth()
