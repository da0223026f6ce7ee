//! `bosun projects list|register|archive`.

use clap::{Args, Subcommand};

use super::connect::Api;
use super::exit::ConsoleError;
use super::render::{self, Format, ago, or_dash, table};
use crate::pb;

#[derive(Debug, Subcommand)]
pub enum ProjectsCommand {
    /// List projects by id; archived ones only with --all.
    List {
        /// Also list archived projects.
        #[arg(long, short)]
        all: bool,
    },
    /// Register a project (an admin token).
    Register(RegisterArgs),
    /// Archive a project: no new sessions in it (an admin token).
    Archive {
        /// The project's id.
        id: String,
    },
}

#[derive(Debug, Args)]
pub struct RegisterArgs {
    /// The project's id, a short slug such as "mer"; it prefixes session ids.
    id: String,
    /// The absolute path of the repository's local clone.
    #[arg(long)]
    repo_path: Option<String>,
    /// The repository's origin URL, e.g. https://github.com/acme/mer.git.
    #[arg(long)]
    origin_url: Option<String>,
    /// A name for people [default: the id].
    #[arg(long)]
    name: Option<String>,
}

pub async fn run(api: &Api, format: Format, command: ProjectsCommand) -> Result<(), ConsoleError> {
    let mut sessions = api.sessions();
    match command {
        ProjectsCommand::List { all } => {
            let answer = sessions
                .list_projects(pb::ListProjectsRequest {
                    include_archived: all,
                    ..Default::default()
                })
                .await?
                .into_inner();
            render::print(format, &answer, |answer| project_table(&answer.projects))
        }
        ProjectsCommand::Register(args) => {
            let project = pb::Project {
                id: args.id,
                repo_path: args.repo_path.unwrap_or_default(),
                origin_url: args.origin_url.unwrap_or_default(),
                display_name: args.name.unwrap_or_default(),
                ..Default::default()
            };
            let project = sessions
                .register_project(pb::RegisterProjectRequest {
                    request_id: String::new(),
                    project: Some(project),
                })
                .await?
                .into_inner();
            render::print(format, &project, |project| {
                project_table(std::slice::from_ref(project))
            })
        }
        ProjectsCommand::Archive { id } => {
            let project = sessions
                .archive_project(pb::ArchiveProjectRequest { project_id: id })
                .await?
                .into_inner();
            render::print(format, &project, |project| {
                project_table(std::slice::from_ref(project))
            })
        }
    }
}

fn project_table(projects: &[pb::Project]) -> String {
    let rows = projects
        .iter()
        .map(|project| {
            vec![
                project.id.clone(),
                project.display_name.clone(),
                or_dash(if project.origin_url.is_empty() {
                    &project.repo_path
                } else {
                    &project.origin_url
                }),
                ago(project.register_time.as_ref()),
                if project.archive_time.is_some() {
                    format!("archived {}", ago(project.archive_time.as_ref()))
                } else {
                    "active".into()
                },
            ]
        })
        .collect();
    table(&["ID", "NAME", "REPOSITORY", "REGISTERED", "STATE"], rows)
}
