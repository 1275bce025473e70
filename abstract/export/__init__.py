"""Exporters: trained interventions in the layouts other tools read (``mib``: the MIB benchmark)."""
