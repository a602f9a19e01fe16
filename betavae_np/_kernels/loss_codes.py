"""The integer codes and positions of a loss spec (:mod:`.loss`); no Numba, so that loss specs
can be built without loading the compiler."""

# positions in lc
KIND, RECON, ESTIMATOR, LS_OFF = 0, 1, 2, 3
# positions in lw
SIGMA, N_DATA, ALPHA, GAMMA = 0, 1, 2, 3
# TC-VAE only: the TC weight the forward's gradient pass uses (appended by the workspace, .tc)
TC_BETA = 4
# codes
BETAVAE, TCVAE = 0, 1
SSE, GAUSSIAN, GAUSSIAN_LEARNED = 0, 1, 2
MWS, MSS = 0, 1
