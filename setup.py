"""Packaging glue that pyproject.toml cannot express (all metadata lives there).

The zoo ships inside the package: the `specs/` folder (the one copy; nothing is duplicated) is
installed as the package data of `archspec.zoo_specs`, so `archspec build resnet50` works from a
wheel. In a checkout, `archspec.zoo.zoo_folder()` reads `specs/` directly.
"""
from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["archspec", "archspec.*"]) + ["archspec.zoo_specs"],
    package_dir={"archspec.zoo_specs": "specs"},
    package_data={"archspec.zoo_specs": ["*.yaml", "**/*.yaml"]},
)
