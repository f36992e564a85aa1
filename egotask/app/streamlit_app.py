"""The script `egotask app` hands to `streamlit run`; its arguments are the paths to load."""

import sys

from egotask.app.page import render

render(sys.argv[1:])
