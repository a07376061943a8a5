"""hostsim: a simulator of the IDHub host that loads connector plugins exactly as IDHub does.

The contract plugins import is :mod:`hostsim.hookspecs`, :mod:`hostsim.connector`,
:mod:`hostsim.model`, :mod:`hostsim.errors`, :mod:`hostsim.converter` and :mod:`hostsim.steps`;
the rest (plugin loading, runtime, CLI, embedded AWS) is the simulated connector application.
"""
