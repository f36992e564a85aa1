"""EgoTempo open-ended QA docs: the model sees the whole clip."""

from egotask.tasklib import make_process_docs

process_docs = make_process_docs("egotempo_openqa")
process_docs_test = make_process_docs("egotempo_openqa", split="test")
