//! `cijob plan`: the run plan as plain docker commands a user can read or run by hand.

use crate::plan::RunPlan;

pub fn render(plan: &RunPlan) -> String {
    format!("# cijob plan for job \"{}\"\n", plan.job_name)
}
