"""The infra command line and the offline harness that runs the program under mocks."""
