"""Deployment tooling for RoomFit: CloudFormation template (pipeline.yaml) and the `python -m deploy` command."""
