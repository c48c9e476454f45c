"""Study workflows built on the stages below; one subpackage per study.

Imports: every stage below ``studies`` (not ``cli``).
"""
