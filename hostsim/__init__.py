"""hostsim: a simulator of the IDHub host that loads connector plugins exactly as IDHub does.

The contract a plugin imports is the package :mod:`hostsim.contract` (and nothing else of
hostsim); the rest (plugin loading, runtime, CLI, SCIM API, IDHub's side, embedded AWS) is the
simulated connector application and IDHub core.
"""
