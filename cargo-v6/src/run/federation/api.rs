//! The part of the vantage6 server an algorithm's client talks to (through its node's proxy)
//! during a federated run: the tasks, their runs and results, the organizations and the
//! collaboration. Pure data and answers, no I/O: the server ([`super::server`]) feeds it
//! requests, the run ([`super`]) starts the runs it asks for and hands their results back.
//!
//! The answers follow what vantage6-algorithm-tools' `AlgorithmClient` reads (4.15.2 and
//! 5.0.3): lists as `{"data": [...], "links": {...}}` on one page, inputs and results as base64
//! of the JSON the function takes or wrote (an unencrypted collaboration: the proxy's
//! `DummyCryptor`), task status strings of `vantage6.common.task_status`. A request for
//! anything else is answered 404 and ends the run, naming it: an algorithm that needs an
//! endpoint this server lacks fails at once instead of misbehaving later.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Map, Value, json};

/// One HTTP request of a container, as the server read it.
#[derive(Debug, Clone, Copy)]
pub(super) struct ApiRequest<'a> {
    /// `GET`, `POST`, ...
    pub method: &'a str,
    /// The path, without the leading `/`.
    pub path: &'a str,
    /// The query string, without `?`.
    pub query: &'a str,
    /// The body.
    pub body: &'a [u8],
    /// The `Authorization` header.
    pub authorization: Option<&'a str>,
}

/// The answer to one request, and what the run must do because of it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The JSON body.
    pub body: Value,
    /// What the run does next.
    pub effect: Effect,
    /// A task's status while it runs: the server asks again once a run ends instead of
    /// answering, so that the client's polling (1 s, then 1.5 times longer each time) does not
    /// wait on a finished task.
    pub unfinished: bool,
}

/// What a request asks of the run, beyond its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Effect {
    /// Nothing.
    None,
    /// Start these runs (a task was created).
    Start(Vec<u64>),
    /// The algorithm asked for something this run cannot give: stop the run with this reason.
    Stop(String),
}

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RunStatus {
    /// Created, not started yet (waiting for a free `-j` slot).
    Pending,
    /// Its container runs.
    Active,
    /// Its container exited 0 and wrote its output.
    Completed,
    /// It failed.
    Failed,
}

impl RunStatus {
    /// The status string of vantage6 `major`'s `TaskStatus` (4.x `common/task_status.py`,
    /// 5.x `common/enum.py`, where an unfinished task is `awaiting`).
    fn as_str(self, major: u64) -> &'static str {
        match self {
            RunStatus::Pending | RunStatus::Active if major >= 5 => "awaiting",
            RunStatus::Pending => "pending",
            RunStatus::Active => "active",
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
        }
    }
}

/// A task: one function at one or more organizations.
#[derive(Debug, Clone)]
struct TaskRecord {
    id: u64,
    parent: Option<u64>,
    name: String,
    description: String,
    /// The database labels its runs read, as the creator gave them.
    databases: Value,
    runs: Vec<u64>,
    /// 5.x: the session and the step, as the creator gave them.
    session: Option<u64>,
    action: Option<String>,
}

/// One organization's run of a task: what it was asked and what it answered.
#[derive(Debug, Clone)]
pub(super) struct RunRecord {
    /// The run's id.
    pub id: u64,
    /// Its task's id.
    pub task: u64,
    /// Where it runs.
    pub organization: u64,
    /// What the function is given, as the creator encoded it (base64 of JSON).
    pub input: String,
    /// The decoded input: the function, its positional and keyword arguments.
    pub call: Call,
    /// The input file's bytes as the creator encoded them (a subtask's; `None` for the user's
    /// task, written from `call`).
    pub raw: Option<Vec<u8>>,
    /// Where it is.
    pub status: RunStatus,
    /// What the function wrote, once completed.
    pub result: Option<Vec<u8>>,
    /// The secret in its container's token.
    pub nonce: String,
}

/// What a run's function is called with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Call {
    /// The function.
    pub method: String,
    /// Positional arguments (4.x).
    pub args: Vec<Value>,
    /// Keyword arguments.
    pub kwargs: Map<String, Value>,
    /// The database labels the task names (4.x `databases`; 5.x the dataframes).
    pub databases: Vec<String>,
    /// 5.x: the step the creator asked for.
    pub action: Option<String>,
}

/// A task a container asks for, as its body gives it.
struct NewTask {
    name: String,
    description: String,
    /// The databases, as given (labels, or 5.x dataframe ids).
    databases: Value,
    inputs: Vec<NewRun>,
    /// 5.x: the session and the step.
    session: Option<u64>,
    action: Option<String>,
}

/// One organization's run of a [`NewTask`].
struct NewRun {
    organization: u64,
    /// Its input as sent (base64).
    encoded: String,
    call: Call,
    /// The input decoded: the bytes the node writes to the input file.
    raw: Vec<u8>,
}

/// The server's state for one federated run.
pub(super) struct Api {
    major: u64,
    collaboration: u64,
    organizations: Vec<u64>,
    image: String,
    /// 5.x: the session's dataframes, named by their labels; `dataframe_id` N is the Nth.
    dataframes: Vec<String>,
    tasks: Vec<TaskRecord>,
    runs: Vec<RunRecord>,
    nonce: Box<dyn FnMut() -> String + Send>,
}

impl Api {
    /// A server for `organizations` of one collaboration, running `image` of vantage6 `major`
    /// (5.x: with a session holding `dataframes`); `nonce` makes each container's secret.
    pub fn new(
        major: u64,
        collaboration: u64,
        organizations: Vec<u64>,
        image: &str,
        dataframes: Vec<String>,
        nonce: Box<dyn FnMut() -> String + Send>,
    ) -> Api {
        Api {
            major,
            collaboration,
            organizations,
            image: image.to_owned(),
            dataframes,
            tasks: Vec::new(),
            runs: Vec::new(),
            nonce,
        }
    }

    /// The user's task: `call` at `organization`, as a user's client creates it, its input file
    /// `written` when the arguments were written by the user. Returns the id of its one run.
    pub fn create_user_task(
        &mut self,
        organization: u64,
        call: Call,
        written: Option<Vec<u8>>,
    ) -> u64 {
        let input = STANDARD.encode(serde_json::to_vec(&call_json(&call)).unwrap_or_default());
        let databases = json!(
            call.databases
                .iter()
                .map(|label| json!({ "label": label }))
                .collect::<Vec<_>>()
        );
        let task = self.add_task(None, "cargo v6 run".to_owned(), String::new(), databases);
        self.add_run(task, organization, input, call, written)
    }

    /// A run, by id.
    pub fn run(&self, id: u64) -> Option<&RunRecord> {
        self.runs.get(index(id)?)
    }

    /// The task whose child `task` is, if any.
    pub fn parent_of(&self, task: u64) -> Option<u64> {
        self.tasks.get(index(task)?).and_then(|t| t.parent)
    }

    /// Marks run `id` as started.
    pub fn started(&mut self, id: u64) {
        if let Some(run) = index(id).and_then(|i| self.runs.get_mut(i)) {
            run.status = RunStatus::Active;
        }
    }

    /// Records how run `id` ended: its output, or `None` when it failed.
    pub fn finished(&mut self, id: u64, output: Option<Vec<u8>>) {
        if let Some(run) = index(id).and_then(|i| self.runs.get_mut(i)) {
            run.status = if output.is_some() {
                RunStatus::Completed
            } else {
                RunStatus::Failed
            };
            run.result = output;
        }
    }

    /// Answers one request.
    pub fn answer(&mut self, request: &ApiRequest<'_>) -> Answer {
        let Some(caller) = self.caller(request.authorization) else {
            return Answer {
                status: 401,
                unfinished: false,
                body: json!({ "msg": "no container token of this run" }),
                effect: Effect::None,
            };
        };
        let query = parse_query(request.query);
        let segments: Vec<&str> = request.path.trim_matches('/').split('/').collect();
        let answer = match (request.method, segments.as_slice()) {
            ("GET", ["organization"]) => Some(
                self.page(
                    self.organizations
                        .iter()
                        .map(|&id| self.organization_json(id))
                        .collect(),
                ),
            ),
            ("GET", ["organization", id]) => Some(
                match id.parse().ok().filter(|id| self.organizations.contains(id)) {
                    Some(id) => ok(self.organization_json(id)),
                    None => not_found(&format!("Organization id={id} not found")),
                },
            ),
            ("GET", ["collaboration", id]) if id.parse() == Ok(self.collaboration) => {
                Some(ok(self.collaboration_json()))
            }
            ("GET", ["study"]) => Some(self.page(Vec::new())),
            ("GET", ["blobstream", "status"]) => Some(ok(json!({ "blob_store_enabled": false }))),
            ("POST", ["task"]) => Some(self.create_task(caller, request.body)),
            ("GET", ["task", id]) => Some(self.with_task(id, |api, t| ok(api.task_json(t)))),
            ("GET", ["task", id, "status"]) => Some(self.with_task(id, |api, t| {
                let status = api.task_status(t);
                Answer {
                    unfinished: matches!(status, RunStatus::Pending | RunStatus::Active),
                    ..ok(json!({ "id": t.id, "status": status.as_str(api.major) }))
                }
            })),
            ("GET", ["run"] | ["result"]) => {
                let task = query.get("task_id").and_then(|id| id.parse::<u64>().ok());
                let page = query.get("page").and_then(|p| p.parse::<u64>().ok());
                let runs: Vec<Value> = match page {
                    Some(page) if page > 1 => Vec::new(),
                    _ => self
                        .runs
                        .iter()
                        .filter(|run| task.is_none_or(|t| run.task == t))
                        .map(|run| self.run_json(run))
                        .collect(),
                };
                Some(self.page(runs))
            }
            ("GET", ["run" | "result", id]) => {
                Some(match id.parse().ok().and_then(|id| self.run(id)) {
                    Some(run) => ok(self.run_json(run)),
                    None => not_found(&format!("Run id={id} not found")),
                })
            }
            _ => None,
        };
        answer.unwrap_or_else(|| {
            let what = format!("{} /{}", request.method, request.path.trim_matches('/'));
            Answer {
                status: 404,
                unfinished: false,
                body: json!({ "msg": format!("cargo v6 does not serve `{what}`") }),
                effect: Effect::Stop(format!(
                    "the algorithm asked the server for `{what}`, which a local federated run \
                     does not serve (it serves tasks, runs, results, organizations, the \
                     collaboration and studies)"
                )),
            }
        })
    }

    /// The run whose container holds `authorization`'s token.
    fn caller(&self, authorization: Option<&str>) -> Option<u64> {
        let token = authorization?.strip_prefix("Bearer ")?;
        let payload = token.split('.').nth(1)?;
        let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
        let nonce = claims.get("jti")?.as_str()?;
        self.runs
            .iter()
            .find(|run| run.nonce == nonce)
            .map(|run| run.id)
    }

    /// `POST /task`, from the container of run `caller`.
    fn create_task(&mut self, caller: u64, body: &[u8]) -> Answer {
        match self.parse_task(body) {
            Ok(new) => {
                let parent = self.run(caller).map(|run| run.task);
                let task = self.add_task(parent, new.name, new.description, new.databases.clone());
                if let Some(record) = index(task).and_then(|i| self.tasks.get_mut(i)) {
                    record.session = new.session;
                    record.action.clone_from(&new.action);
                }
                let labels = self.labels_of(&new.databases);
                let runs = new
                    .inputs
                    .into_iter()
                    .map(|input| {
                        let mut call = input.call;
                        call.databases.clone_from(&labels);
                        call.action.clone_from(&new.action);
                        self.add_run(
                            task,
                            input.organization,
                            input.encoded,
                            call,
                            Some(input.raw),
                        )
                    })
                    .collect();
                let body = self
                    .tasks
                    .get(index(task).unwrap_or(usize::MAX))
                    .map_or(Value::Null, |t| self.task_json(t));
                Answer {
                    status: 201,
                    unfinished: false,
                    body,
                    effect: Effect::Start(runs),
                }
            }
            Err(reason) => Answer {
                status: 400,
                unfinished: false,
                body: json!({ "msg": reason }),
                effect: Effect::Stop(format!(
                    "the algorithm created a task this run refuses: {reason}"
                )),
            },
        }
    }

    /// A task's creation body, checked as the server checks it.
    fn parse_task(&self, body: &[u8]) -> Result<NewTask, String> {
        let body: Value =
            serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
        let image = body
            .get("image")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if image != self.image {
            return Err(format!(
                "a container may only create tasks of its own image `{}`, not `{image}`",
                self.image
            ));
        }
        let Some(organizations) = body.get("organizations").and_then(Value::as_array) else {
            return Err("`organizations` is missing".to_owned());
        };
        if organizations.is_empty() {
            return Err("`organizations` is empty".to_owned());
        }
        let mut inputs = Vec::new();
        for entry in organizations {
            let Some(id) = entry.get("id").and_then(Value::as_u64) else {
                return Err(format!("organization `{entry}` has no id"));
            };
            if !self.organizations.contains(&id) {
                return Err(format!(
                    "organization {id} is not in this run (--org gives {})",
                    self.organizations
                        .iter()
                        .map(u64::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            // 4.x `input`, 5.x `arguments`.
            let input = entry
                .get("input")
                .or_else(|| entry.get("arguments"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            let (call, raw) = self.decode_input(&body, input)?;
            inputs.push(NewRun {
                organization: id,
                encoded: input.to_owned(),
                call,
                raw,
            });
        }
        let text = |key: &str| {
            body.get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let databases = body.get("databases").cloned().unwrap_or(json!([]));
        let session = body.get("session_id").and_then(Value::as_u64);
        let action = body
            .get("action")
            .and_then(Value::as_str)
            .map(str::to_owned);
        Ok(NewTask {
            name: text("name"),
            description: text("description"),
            databases,
            inputs,
            session,
            action,
        })
    }

    /// One organization's input: base64 of the JSON the function is called with (4.x
    /// `{"method", "args", "kwargs"}`; 5.x the keyword arguments, the method in the body),
    /// as Python writes JSON (`NaN`, `Infinity` included). The call, and the bytes as they
    /// came, which the node writes to the input file.
    fn decode_input(&self, body: &Value, input: &str) -> Result<(Call, Vec<u8>), String> {
        let bytes = STANDARD.decode(input).map_err(|e| {
            format!("an organization's input is not base64 (encryption is off): {e}")
        })?;
        let value =
            python_json(&bytes).map_err(|e| format!("an organization's input is not JSON: {e}"))?;
        let (method, args, kwargs) = if self.major >= 5 {
            let method = body.get("method").and_then(Value::as_str);
            (method, json!([]), value)
        } else {
            let method = value.get("method").and_then(Value::as_str);
            (
                method,
                value.get("args").cloned().unwrap_or(json!([])),
                value.get("kwargs").cloned().unwrap_or(json!({})),
            )
        };
        let Some(method) = method else {
            return Err("the task names no method".to_owned());
        };
        let Value::Array(args) = args else {
            return Err("`args` is not a list".to_owned());
        };
        let Value::Object(kwargs) = kwargs else {
            return Err("the keyword arguments are not an object".to_owned());
        };
        let call = Call {
            method: method.to_owned(),
            args,
            kwargs,
            databases: Vec::new(),
            action: None,
        };
        Ok((call, bytes))
    }

    /// The labels of a task's `databases`: 4.x `[{"label": ...}]`; 5.x lists (one per
    /// argument position) of `{"dataframe_id": N}`, named by the session's dataframes.
    fn labels_of(&self, databases: &Value) -> Vec<String> {
        let mut labels = Vec::new();
        let mut pending = vec![databases];
        while let Some(value) = pending.pop() {
            match value {
                Value::Array(items) => pending.extend(items.iter().rev()),
                Value::Object(entry) => {
                    let name = match entry.get("dataframe_id").and_then(Value::as_u64) {
                        Some(id) => index(id).and_then(|i| self.dataframes.get(i)).cloned(),
                        None => entry
                            .get("label")
                            .and_then(Value::as_str)
                            .map(str::to_owned),
                    };
                    labels.extend(name);
                }
                _ => {}
            }
        }
        labels
    }

    fn add_task(
        &mut self,
        parent: Option<u64>,
        name: String,
        description: String,
        databases: Value,
    ) -> u64 {
        let id = self.tasks.len() as u64 + 1;
        self.tasks.push(TaskRecord {
            id,
            parent,
            name,
            description,
            databases,
            runs: Vec::new(),
            session: None,
            action: None,
        });
        id
    }

    fn add_run(
        &mut self,
        task: u64,
        organization: u64,
        input: String,
        call: Call,
        raw: Option<Vec<u8>>,
    ) -> u64 {
        let id = self.runs.len() as u64 + 1;
        let nonce = (self.nonce)();
        self.runs.push(RunRecord {
            id,
            task,
            organization,
            input,
            call,
            raw,
            status: RunStatus::Pending,
            result: None,
            nonce,
        });
        if let Some(record) = index(task).and_then(|i| self.tasks.get_mut(i)) {
            record.runs.push(id);
        }
        id
    }

    fn with_task(&self, id: &str, answer: impl Fn(&Api, &TaskRecord) -> Answer) -> Answer {
        match id
            .parse()
            .ok()
            .and_then(index)
            .and_then(|i| self.tasks.get(i))
        {
            Some(task) => answer(self, task),
            None => not_found(&format!("Task id={id} not found")),
        }
    }

    /// A task is done when every run is: failed when one failed.
    fn task_status(&self, task: &TaskRecord) -> RunStatus {
        let statuses: Vec<RunStatus> = task
            .runs
            .iter()
            .filter_map(|&id| self.run(id).map(|r| r.status))
            .collect();
        if statuses.contains(&RunStatus::Failed) {
            RunStatus::Failed
        } else if statuses.iter().all(|&s| s == RunStatus::Completed) {
            RunStatus::Completed
        } else if statuses.contains(&RunStatus::Active) {
            RunStatus::Active
        } else {
            RunStatus::Pending
        }
    }

    fn page(&self, data: Vec<Value>) -> Answer {
        let total = data.len();
        ok(json!({
            "data": data,
            "links": { "first": "?page=1", "self": "?page=1", "last": "?page=1" },
            "total": total,
        }))
    }

    fn organization_json(&self, id: u64) -> Value {
        json!({
            "id": id,
            "name": format!("organization {id}"),
            "domain": null,
            "public_key": "",
            "address1": "",
            "address2": "",
            "zipcode": "",
            "country": "",
            "collaborations": format!("/collaboration?organization_id={id}"),
        })
    }

    fn collaboration_json(&self) -> Value {
        json!({
            "id": self.collaboration,
            "name": "cargo v6 run",
            "encrypted": false,
            "session_restrict_to_same_image": false,
            "organizations": self.organizations.iter().map(|&id| json!({ "id": id })).collect::<Vec<_>>(),
        })
    }

    fn task_json(&self, task: &TaskRecord) -> Value {
        json!({
            "id": task.id,
            "name": task.name,
            "description": task.description,
            "image": self.image,
            "status": self.task_status(task).as_str(self.major),
            "collaboration": { "id": self.collaboration },
            "parent": task.parent.map(|id| json!({ "id": id })),
            "job_id": self.job_of(task.id),
            "databases": task.databases,
            "session": task.session.map(|id| json!({ "id": id })),
            "action": task.action,
            "runs": format!("/run?task_id={}", task.id),
            "results": format!("/result?task_id={}", task.id),
            "init_org": task.runs.first().and_then(|&r| self.run(r)).map(|r| json!({ "id": r.organization })),
        })
    }

    /// The first task of a task's family, whose id vantage6 uses as the job id.
    fn job_of(&self, task: u64) -> u64 {
        let mut id = task;
        while let Some(parent) = self.parent_of(id) {
            id = parent;
        }
        id
    }

    fn run_json(&self, run: &RunRecord) -> Value {
        json!({
            "id": run.id,
            "run_id": run.id,
            "task": { "id": run.task },
            "organization": { "id": run.organization },
            "node": { "id": run.organization },
            "status": run.status.as_str(self.major),
            "input": run.input,
            "result": run.result.as_ref().map(|bytes| STANDARD.encode(bytes)),
            "blob_storage_used": false,
            "log": null,
            "ports": [],
        })
    }
}

/// The JSON a user's task carries for 4.x: `{"method", "args", "kwargs"}`.
fn call_json(call: &Call) -> Value {
    json!({ "method": call.method, "args": call.args, "kwargs": call.kwargs })
}

/// JSON as Python's `json` writes it: `NaN`, `Infinity` and `-Infinity` (outside strings),
/// which strict JSON lacks, read as `null` (only the method and the shape are read from it;
/// the bytes themselves go to the node).
fn python_json(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    let text = String::from_utf8_lossy(bytes);
    let mut strict = String::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    let mut rest = text.as_ref();
    while let Some(c) = rest.chars().next() {
        if !in_string {
            if let Some(token) = ["-Infinity", "Infinity", "NaN"]
                .into_iter()
                .find(|t| rest.starts_with(t))
            {
                strict.push_str("null");
                rest = &rest[token.len()..];
                continue;
            }
            in_string = c == '"';
        } else if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '"' {
            in_string = false;
        }
        strict.push(c);
        rest = &rest[c.len_utf8()..];
    }
    serde_json::from_str(&strict)
}

fn index(id: u64) -> Option<usize> {
    usize::try_from(id).ok()?.checked_sub(1)
}

fn ok(body: Value) -> Answer {
    Answer {
        status: 200,
        unfinished: false,
        body,
        effect: Effect::None,
    }
}

fn not_found(message: &str) -> Answer {
    Answer {
        status: 404,
        unfinished: false,
        body: json!({ "msg": message }),
        effect: Effect::None,
    }
}

/// `a=1&b=2`, percent-decoding not needed: the client sends numbers.
fn parse_query(query: &str) -> BTreeMap<&str, &str> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server of three organizations whose nonces are `n1`, `n2`, ...
    fn api(major: u64) -> Api {
        let mut n = 0;
        let nonce = Box::new(move || {
            n += 1;
            format!("n{n}")
        });
        Api::new(
            major,
            1,
            vec![1, 2, 3],
            "img",
            vec!["default".into()],
            nonce,
        )
    }

    /// The bearer token of a container whose nonce is `nonce`.
    fn bearer(nonce: &str) -> String {
        let claims = URL_SAFE_NO_PAD.encode(json!({ "sub": {}, "jti": nonce }).to_string());
        format!("Bearer e30.{claims}.")
    }

    fn ask(api: &mut Api, method: &str, path: &str, body: &Value) -> Answer {
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        let body = body.to_string();
        api.answer(&ApiRequest {
            method,
            path,
            query,
            body: body.as_bytes(),
            authorization: Some(&bearer("n1")),
        })
    }

    fn central(api: &mut Api) -> u64 {
        api.create_user_task(
            1,
            Call {
                method: "central".into(),
                args: Vec::new(),
                kwargs: Map::new(),
                databases: vec!["default".into()],
                action: None,
            },
            None,
        )
    }

    #[test]
    fn a_subtask_is_created_run_and_its_results_read_back_as_the_client_decodes_them() {
        let mut api = api(4);
        let parent = central(&mut api);
        let input = STANDARD.encode(r#"{"method": "partial", "kwargs": {"column": "a"}}"#);
        let body = json!({
            "image": "img",
            "organizations": [{"id": 2, "input": input}, {"id": 3, "input": input}],
            "databases": [{"label": "default"}],
        });
        let created = ask(&mut api, "POST", "/task", &body);
        assert_eq!(created.status, 201);
        assert_eq!(created.effect, Effect::Start(vec![2, 3]));
        assert_eq!(created.body["parent"]["id"], parent);
        let run = api.run(2).unwrap();
        assert_eq!((run.organization, run.call.method.as_str()), (2, "partial"));
        assert_eq!(run.call.kwargs["column"], "a");
        assert_eq!(run.call.databases, ["default"]);

        // Unfinished: answered, and flagged to be held until a run ends.
        let status = ask(&mut api, "GET", "/task/2/status", &Value::Null);
        assert_eq!(
            (status.body["status"].as_str(), status.unfinished),
            (Some("pending"), true)
        );
        api.finished(2, Some(br#"{"sum": 1}"#.to_vec()));
        api.finished(3, Some(br#"{"sum": 2}"#.to_vec()));
        let status = ask(&mut api, "GET", "/task/2/status", &Value::Null);
        assert_eq!(
            (status.body["status"].as_str(), status.unfinished),
            (Some("completed"), false)
        );

        let results = ask(&mut api, "GET", "/result?task_id=2&page=1", &Value::Null);
        let decoded: Vec<Value> = results.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                serde_json::from_slice(&STANDARD.decode(r["result"].as_str().unwrap()).unwrap())
                    .unwrap()
            })
            .collect();
        assert_eq!(decoded, [json!({"sum": 1}), json!({"sum": 2})]);
        assert!(results.body["links"].get("next").is_none(), "one page");
        let page2 = ask(&mut api, "GET", "/result?task_id=2&page=2", &Value::Null);
        assert_eq!(page2.body["data"], json!([]));
    }

    #[test]
    fn a_5x_subtask_names_its_dataframes_by_id_and_an_unfinished_task_is_awaiting() {
        let mut api = api(5);
        central(&mut api);
        let arguments = STANDARD.encode(r#"{"column": "a"}"#);
        let body = json!({
            "image": "img", "method": "partial", "action": "federated_compute", "session_id": 1,
            "organizations": [{"id": 1, "arguments": arguments}],
            "databases": [[{"label": null, "type": "dataframe", "dataframe_id": 1}]],
        });
        assert_eq!(
            ask(&mut api, "POST", "/task", &body).effect,
            Effect::Start(vec![2])
        );
        let run = api.run(2).unwrap();
        assert_eq!(run.call.databases, ["default"]);
        assert_eq!(run.call.action.as_deref(), Some("federated_compute"));
        assert_eq!(run.call.kwargs["column"], "a");
        let status = ask(&mut api, "GET", "/task/2/status", &Value::Null);
        assert_eq!(status.body["status"], "awaiting");
    }

    /// Python's `json.dumps` writes `NaN` and `Infinity`: the subtask is created, and its
    /// input goes to the node as the central function wrote it.
    #[test]
    fn an_input_with_python_s_nan_is_taken_and_kept_byte_for_byte() {
        let mut api = api(5);
        central(&mut api);
        let written = r#"{"betas": [NaN, Infinity, -Infinity, 1.0], "note": "NaN \" Infinity"}"#;
        let body = json!({
            "image": "img", "method": "partial",
            "organizations": [{"id": 2, "arguments": STANDARD.encode(written)}],
        });
        assert_eq!(
            ask(&mut api, "POST", "/task", &body).effect,
            Effect::Start(vec![2])
        );
        let run = api.run(2).unwrap();
        assert_eq!(run.raw.as_deref(), Some(written.as_bytes()));
        assert_eq!(run.call.kwargs["betas"], json!([null, null, null, 1.0]));
        assert_eq!(run.call.kwargs["note"], "NaN \" Infinity");
    }

    #[test]
    fn what_the_run_cannot_give_stops_it_and_strangers_are_refused() {
        let mut api = api(4);
        central(&mut api);
        let vpn = ask(&mut api, "GET", "/vpn/algorithm/addresses", &Value::Null);
        assert_eq!(vpn.status, 404);
        assert!(
            matches!(&vpn.effect, Effect::Stop(why) if why.contains("`GET /vpn/algorithm/addresses`"))
        );

        let input = STANDARD.encode(r#"{"method": "partial"}"#);
        let elsewhere = json!({"image": "img", "organizations": [{"id": 9, "input": input}]});
        let refused = ask(&mut api, "POST", "/task", &elsewhere);
        assert_eq!(refused.status, 400);
        assert!(
            matches!(&refused.effect, Effect::Stop(why) if why.contains("organization 9 is not in this run (--org gives 1, 2, 3)"))
        );
        let other_image = json!({"image": "x", "organizations": [{"id": 1, "input": input}]});
        assert_eq!(ask(&mut api, "POST", "/task", &other_image).status, 400);

        for authorization in [None, Some("Bearer e30.e30."), Some("Bearer nonsense")] {
            let answer = api.answer(&ApiRequest {
                method: "GET",
                path: "/organization",
                query: "",
                body: b"",
                authorization,
            });
            assert_eq!((answer.status, answer.effect), (401, Effect::None));
        }
    }
}
