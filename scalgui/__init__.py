"""scalgui: edit sound in the wavelet-scalogram (magnitude) domain.

Paint, mask, move and process regions of an analytic wavelet scalogram and turn the
edited magnitudes back into audio by phase retrieval.
"""

import os

# Must happen before anything imports torch: with OpenMP's default (active) wait policy,
# idle worker threads spin on the CPU, and on small machines (2 cores) a spinning pool
# competing with the GUI or a worker thread slows transforms 10-30x. setdefault so a
# user's explicit choice still wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
