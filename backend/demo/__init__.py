"""Demo data: a Changzhou-shaped city with grids, staff accounts and synthetic households.

``gridaid demo`` and ``gridaid run --demo`` call ``backend.demo.seed.seed_demo``.
"""
