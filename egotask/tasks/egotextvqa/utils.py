"""EgoTextVQA docs: real-time QA (frames before the question's timestamp) or the whole video."""

from egotask.tasklib import make_process_docs

process_docs_indoor = make_process_docs("egotextvqa_indoor")
process_docs_outdoor = make_process_docs("egotextvqa_outdoor")
process_docs_indoor_fullvideo = make_process_docs("egotextvqa_indoor", full_video=True)
process_docs_outdoor_fullvideo = make_process_docs("egotextvqa_outdoor", full_video=True)
process_docs_indoor_test = make_process_docs("egotextvqa_indoor", split="test")
process_docs_outdoor_test = make_process_docs("egotextvqa_outdoor", split="test")
process_docs_outdoor_realtime = make_process_docs("egotextvqa_outdoor", subset="outdoor_realtime",
                                                  task="egotextvqa_outdoor_realtime")
