//! ListTasks: newest or last updated first.

use super::*;

#[tokio::test]
async fn tasks_list_newest_or_last_updated_first() {
    let server = TestServer::start().await;
    server.project("shop", |_| {}).await;
    let older = server
        .start_task("shop", "i-1", "SHOP-1")
        .await
        .task
        .unwrap();
    let newer = server
        .start_task("shop", "i-2", "SHOP-2")
        .await
        .task
        .unwrap();
    server.walk_to(older.id, Stage::Development).await;

    let pages = |order: TaskOrder| {
        let server = &server;
        async move {
            let mut ids = Vec::new();
            let mut token = String::new();
            loop {
                let page = server
                    .tasks()
                    .list_tasks(pb::ListTasksRequest {
                        page_size: 1,
                        page_token: token,
                        order_by: order.into(),
                        ..Default::default()
                    })
                    .await
                    .expect("list tasks")
                    .into_inner();
                ids.extend(page.tasks.iter().map(|t| t.id));
                if page.next_page_token.is_empty() {
                    return ids;
                }
                token = page.next_page_token;
            }
        }
    };
    assert_eq!(
        pages(TaskOrder::Unspecified).await,
        vec![newer.id, older.id]
    );
    assert_eq!(pages(TaskOrder::CreateTime).await, vec![newer.id, older.id]);
    assert_eq!(pages(TaskOrder::UpdateTime).await, vec![older.id, newer.id]);

    let status = server
        .tasks()
        .list_tasks(pb::ListTasksRequest {
            order_by: 7,
            ..Default::default()
        })
        .await
        .expect_err("unknown order");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(bad_fields(&status), vec!["order_by".to_string()]);
}
