"""Physical constants in the units qpiset uses (eV, Å)."""

#: hbar^2 / (2 m_e) in eV Å^2 (CODATA 2018).
HBAR2_OVER_2ME = 3.80998212
