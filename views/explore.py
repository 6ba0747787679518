"""Explore page (placeholder until the Explore page lands)."""
import streamlit as st

import trajectories

st.title("Gradscape")
st.write("Every method from every start, live. The interactive explorer is being built; meanwhile, the "
         "paper's one-optimum problem with SAM-GS and LS:")
res = trajectories.simulate("one_optimum", ["samgs", "ls"], "paper", 20000, record_every=100)
st.dataframe(res.summary())
