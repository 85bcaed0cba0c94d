"""Figures: poses drawn on images (:mod:`.pose`) and PDJ curves and sweep comparisons
(:mod:`.curves`)."""
