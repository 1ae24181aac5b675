"""ddn-cl: replay-based continual learning with Data-Distill-Net soft labels."""
