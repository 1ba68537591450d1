"""Defaults of faithfulness, attack and channels, importable without torch (the CLI's help)."""

FILLS = ("zero", "blur", "road")
STEP = 28  # pixels removed per step: 29 points per curve at 28×28
FAITHFULNESS_IMAGES = 300
DETAIL_IMAGES = 32  # images for infidelity, max-sensitivity and sanity ρ (each re-attributes)
EPS = (0.0, 0.02, 0.05, 0.1, 0.2, 0.3)
ATTACK_IMAGES = 1000
PGD_STEPS = 10
CHANNEL_STEPS = 128  # feature-visualisation steps per layer
ERF_IMAGES = 16  # test images for a channel's effective receptive field (one backward pass per
# channel each; 64 gave the same widths on resnet's stage3 and cost 4 times as much)
