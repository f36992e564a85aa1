"""The error-analysis app (`egotask app`): browse sample records, verdicts and videos, compare runs.

The Streamlit page (:mod:`egotask.app.page`) only lays things out; loading (:mod:`.runs`),
selection and comparison (:mod:`.selection`) and video access (:mod:`.media`) are plain functions
that the tests call directly.
"""
