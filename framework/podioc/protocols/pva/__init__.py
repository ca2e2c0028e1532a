"""PVAccess: p4p SharedPVs with Normative Types bound to model PVs
(:mod:`.channels`), and access rules and connection limits (:mod:`.access`)."""
