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
# torch's CPU tensors of 2 MB and more in transparent huge pages: a long file's iterations
# allocate and free tensors of hundreds of MB, and the kernel's providing fresh 4 kB pages
# took half of each iteration (60 s of stereo at 48 voices: 3.0 s per ADMM iteration,
# 1.5 s with this). THP_MEM_ALLOC_ENABLE=0 turns it off.
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")

__version__ = "0.1.0"
