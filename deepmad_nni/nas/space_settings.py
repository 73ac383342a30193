"""Every setting of the hub-space solver (:mod:`deepmad_nni.nas.solver`), in one place: the quick plan and
the bound."""
ENUMERATE_LIMIT = 20000           # spaces with at most this many samples are enumerated (proven optimal)
ELIMINATION_CELL_LIMIT = 2 ** 21  # largest bucket table of the variable elimination (else mini-buckets)
LOOKUP_LIMIT = 4096               # largest table of a stage end, of Q or of N over their labels (else bounded)
WEIGHT_GRID = 64                  # most values kept of a stage's entropy weight B_j (else rounded up to a grid)
DUAL_ROUNDS = 24                  # cutting-plane rounds of the root Lagrangian dual
NODE_ROUNDS = 8                   # cutting-plane rounds per branch-and-bound node (from the parent's multipliers)
DUAL_TOLERANCE = 1e-4             # the dual stops when no point of the box can gain this much (relative)
DUAL_BOX = 64.0                   # multipliers, in units of objective per whole budget, lie in [0, DUAL_BOX]
DUAL_STEP = 0.5                   # first trust-region radius of the box-step method (same units)
DUAL_MIN_STEP = 1e-6              # ... and its smallest
SERIOUS_STEP = 0.1                # a step moves the center when it gains this share of the predicted gain
STARTS = 6                        # Lagrangian maximisers the search starts from
PAIR_CANDIDATES = 8               # improving over-budget moves tried with a second move
QUICK_EVALUATIONS = 20000         # the quick search restarts until it has scored this many samples
QUICK_BRANCH_EVALUATIONS = 400    # the quick branch and bound takes no step that could pass this many
QUICK_BRANCH_CELLS = 60_000_000   # Lagrangian maximisations, or this many cells of elimination tables
KICK_PENALTIES = (0.3,)           # loose excess penalties (x objective scale) of the kicks across the budget
PERTURBED_LABELS = 4              # labels redrawn per restart from the incumbent
MULTIPLIER_NOISE = 0.1            # log-normal spread of the multipliers per restart from a Lagrangian maximiser
OPTIMAL_TOLERANCE = 1e-9          # bound within this relative distance of the best design: optimal
IMPROVEMENT = 1e-12               # a move must gain this much (relative) to be taken
RANKING_PENALTY = 1e6             # starts over the limits rank by value - this * |objective| * excess
