"""The work of each deploy stage, one module per stage of plugins/deploy/pipeline.py.

suites/deploy/test_<nn>_<stage>.py states the stage's promises; each test calls one function here and
asserts its outcome. What a stage leaves for later stages it records on the deploy session.
"""
