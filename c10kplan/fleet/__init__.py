"""Storms from many load hosts: generators for the fleet engines users already run (Ansible)."""
